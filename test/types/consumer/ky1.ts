// The README's ky 1 example, compiled against ky 1 (test/types/consumer/tsconfig.ky1.json).
import { tm } from './use.js'

import ky from 'ky'
import { kyHooks } from 'latchkey/ky'

const api = ky.create({
  prefixUrl: 'https://api.example',
  hooks: kyHooks(tm, {
    // the app's own hooks go here, so that latchkey's beforeRequest hook runs last
    beforeRequest: [(request) => request.headers.set('x-request-id', crypto.randomUUID())],
  }),
})
const me = await api.get('me').json()

export { api, me }
