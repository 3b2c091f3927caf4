import { createApp } from 'vue'
import { createTokenManager } from 'latchkey'
import { latchkeyPlugin } from 'latchkey/vue'
import { options } from '../config.js'
import App from './App.vue'

// In-page mode. Worker mode is this one line: connectTokenManager(new SharedWorker(…)).
const tm = createTokenManager(options)

createApp(App).use(latchkeyPlugin(tm)).mount('#app')
