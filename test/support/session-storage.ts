// sessionStorage cannot be real in Node: a Map stands in for the browser's, for the login helpers.
const stored = new Map<string, string>()
globalThis.sessionStorage ??= {
  getItem: (k: string) => stored.get(k) ?? null,
  setItem: (k: string, v: string) => void stored.set(k, v),
  removeItem: (k: string) => void stored.delete(k),
} as Storage
