// Prints one closing line for the whole run from the JSON reports vitest and Playwright write in CI.
import { readFileSync } from 'node:fs'

const read = (file) => {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}
let passed = 0
let failed = 0
let skipped = 0
const unit = read('.tmp/vitest.json')
if (unit) {
  passed += unit.numPassedTests
  failed += unit.numFailedTests
  skipped += unit.numPendingTests + unit.numTodoTests
}
const e2e = read('.tmp/playwright.json')
if (e2e?.stats) {
  passed += e2e.stats.expected + e2e.stats.flaky
  failed += e2e.stats.unexpected
  skipped += e2e.stats.skipped
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
