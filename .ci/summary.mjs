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
  // One line per Playwright project (an engine, or Chromium as a phone): every engine is counted above.
  const perProject = new Map()
  const walk = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const test of spec.tests ?? []) {
        const counts = perProject.get(test.projectName) ?? { passed: 0, failed: 0, skipped: 0 }
        if (test.status === 'expected' || test.status === 'flaky') counts.passed += 1
        else if (test.status === 'skipped') counts.skipped += 1
        else counts.failed += 1
        perProject.set(test.projectName, counts)
      }
    }
    for (const child of suite.suites ?? []) walk(child)
  }
  for (const suite of e2e.suites ?? []) walk(suite)
  for (const [project, counts] of perProject) {
    console.log(`e2e ${project}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`)
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
