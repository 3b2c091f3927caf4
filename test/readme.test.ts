// The README's examples are the code that `npm run typecheck` compiles as a consumer would: each
// block marked `<!-- compiled by …: <file> -->` must appear, line for line, in that file.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('..', import.meta.url)
const readme = readFileSync(new URL('README.md', root), 'utf8')
const blocks = [...readme.matchAll(/<!-- compiled by [^:]*: (test\/types\/consumer\/[\w.-]+) -->\n```tsx?\n([\s\S]*?)```/g)].map(
  ([, file, code]) => ({ file: file!, code: code! }),
)

describe('README examples', () => {
  it('marks the Use example, the ky 1 and ky 2 examples, worker mode and the React and Vue examples as compiled', () => {
    expect(blocks.map((b) => b.file)).toEqual([
      'test/types/consumer/use.ts',
      'test/types/consumer/ky1.ts',
      'test/types/consumer/ky2.ts',
      'test/types/consumer/auth-worker.ts',
      'test/types/consumer/worker-page.ts',
      'test/types/consumer/react.tsx',
      'test/types/consumer/vue.ts',
    ])
  })

  it.each(blocks)('$file holds the README block verbatim', ({ file, code }) => {
    expect(readFileSync(new URL(file, root), 'utf8')).toContain(code)
  })
})
