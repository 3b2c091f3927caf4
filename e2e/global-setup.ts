import { buildDemo } from '../demo/build.mjs'

/** Builds the demo SPA once for the whole run; every test serves the same demo/dist. */
export default async function globalSetup(): Promise<void> {
  await buildDemo()
}
