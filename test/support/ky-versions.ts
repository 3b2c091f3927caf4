// The ky majors the ky tests run against (ky 2 is installed under the alias `ky2`), with what differs
// between them: the prefix option's name, and hooks that take positional arguments (ky 1) or one
// state object (ky 2). beforeRetry takes a state object in both.
import ky1, { HTTPError as HTTPError1, isTimeoutError as isTimeoutError1, type Hooks, type Options } from 'ky'
import ky2, { HTTPError as HTTPError2, isTimeoutError as isTimeoutError2 } from 'ky2'

type Hook = NonNullable<Hooks['beforeRequest']>[number]
type AfterHook = NonNullable<Hooks['afterResponse']>[number]
type ErrorHook = NonNullable<Hooks['beforeError']>[number]

export interface KyVersion {
  name: string
  major: 1 | 2
  /** ky itself, typed as ky 1 (the options the tests use mean the same in both). */
  ky: typeof ky1
  HTTPError: typeof HTTPError1
  isTimeoutError: (error: unknown) => boolean
  /** The option that prefixes relative inputs: `prefixUrl` (ky 1) or `prefix` (ky 2). */
  prefix: (url: string) => Options
  /**
   * The timeout that covers a call through kyHooks: `timeout` (ky 1, which hands it to the hooks);
   * `totalTimeout` (ky 2, which hides `timeout` from hooks and applies it to its own fetch only).
   */
  timeout: (ms: number) => Options
  /** A beforeRequest hook that gets the request. */
  beforeRequest: (fn: (request: Request) => void) => Hook
  /** An afterResponse hook that gets the request and the response. */
  afterResponse: (fn: (request: Request, response: Response) => void) => AfterHook
  /** A beforeError hook that gets the error. */
  beforeError: (fn: (error: InstanceType<typeof HTTPError1>) => Error) => ErrorHook
}

type State = { request: Request; response: Response; error: InstanceType<typeof HTTPError1> }

export const kyVersions: KyVersion[] = [
  {
    name: 'ky 1',
    major: 1,
    ky: ky1,
    HTTPError: HTTPError1,
    isTimeoutError: isTimeoutError1,
    prefix: (url) => ({ prefixUrl: url }),
    timeout: (ms) => ({ timeout: ms }),
    beforeRequest: (fn) => (request) => fn(request),
    afterResponse: (fn) => (request, _options, response) => fn(request, response),
    beforeError: (fn) => (error) => fn(error),
  },
  {
    name: 'ky 2',
    major: 2,
    ky: ky2 as unknown as typeof ky1,
    HTTPError: HTTPError2 as unknown as typeof HTTPError1,
    isTimeoutError: isTimeoutError2,
    prefix: (url) => ({ prefix: url }) as Options,
    timeout: (ms) => ({ totalTimeout: ms }) as Options,
    beforeRequest: (fn) => ((state: State) => fn(state.request)) as unknown as Hook,
    afterResponse: (fn) => ((state: State) => fn(state.request, state.response)) as unknown as AfterHook,
    beforeError: (fn) => ((state: State) => fn(state.error)) as unknown as ErrorHook,
  },
]
