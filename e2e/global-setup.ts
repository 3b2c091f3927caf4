import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { buildDemo } from '../demo/build.mjs'

/**
 * A virtual display for WebKit's MiniBrowser, which has no headless mode. Xvfb picks a free display
 * number and writes it to the pipe (-displayfd); the workers inherit DISPLAY from this process.
 */
async function startXvfb(): Promise<ChildProcess> {
  const xvfb = spawn('/usr/bin/Xvfb', ['-displayfd', '1', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const display = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('Xvfb did not start within 10 s')), 10_000)
    xvfb.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) {
        clearTimeout(timer)
        resolve(out.trim())
      }
    })
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}`)))
  })
  process.env['DISPLAY'] = `:${display}`
  return xvfb
}

/** Builds the demo SPA once for the whole run (every test serves the same demo/dist), and starts Xvfb. */
export default async function globalSetup(): Promise<() => Promise<void>> {
  await buildDemo()
  const xvfb = !process.env['DISPLAY'] && existsSync('/usr/bin/Xvfb') ? await startXvfb() : undefined
  return async () => {
    xvfb?.kill()
  }
}
