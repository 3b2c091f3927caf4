import { createApp } from 'vue'
import { createTokenManager } from 'latchkey'
import { latchkeyPlugin } from 'latchkey/vue'
import { connectTokenManager } from 'latchkey/worker'
import { options, workerMode } from '../config.js'
import App from './App.vue'

// In-page mode, or worker mode: one line apart.
const tm = workerMode
  ? connectTokenManager(new SharedWorker(new URL('../auth-worker.ts', import.meta.url), { type: 'module', name: 'latchkey' }))
  : createTokenManager(options)

createApp(App).use(latchkeyPlugin(tm)).mount('#app')
