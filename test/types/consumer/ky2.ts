// The README's ky 2 example, compiled against ky 2 (test/types/consumer/tsconfig.ky2.json maps
// 'ky' to the ky2 alias, as an app with ky 2 installed resolves it).
import { tm } from './use.js'

import ky from 'ky'
import { kyHooks } from 'latchkey/ky'

const api = ky.create({
  prefix: 'https://api.example',
  totalTimeout: 10_000,   // ky 2's `timeout` never reaches the hook that sends the request
  hooks: kyHooks(tm, {
    beforeRequest: [({ request }) => request.headers.set('x-request-id', crypto.randomUUID())],
  }),
})
const me = await api.get('me').json()

export { api, me }
