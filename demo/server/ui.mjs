// The few styles the server-rendered pages share with the SPA, so the sign-in step looks like part
// of the same product. Kept in sync by hand with demo/app/styles.css (same tokens, same names).

export const PAGE_CSS = `
:root {
  --bg: #f3f4f8; --card: #ffffff; --ink: #161a26; --muted: #5d6478; --line: #e2e5ee;
  --accent: #3451d1; --accent-ink: #ffffff; --accent-soft: #eef1fd; --radius: 14px;
  font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; padding: 24px; }
.card { width: min(420px, 100%); background: var(--card); border: 1px solid var(--line);
  border-radius: var(--radius); padding: 28px; box-shadow: 0 1px 2px rgb(16 24 40 / 4%), 0 8px 24px rgb(16 24 40 / 6%); }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 700; letter-spacing: -0.01em; }
.mark { width: 28px; height: 28px; }
.mark rect { fill: var(--accent); }
.mark circle, .mark path { fill: none; stroke: #fff; stroke-width: 2.5; stroke-linecap: round; }
h1 { font-size: 1.35rem; margin: 22px 0 6px; letter-spacing: -0.015em; }
p { color: var(--muted); line-height: 1.5; margin: 0 0 14px; }
ul { padding: 0; margin: 0 0 22px; list-style: none; display: flex; flex-wrap: wrap; gap: 6px; }
li { font: 12px/1 ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--accent-soft); color: var(--accent);
  padding: 6px 8px; border-radius: 999px; }
button { width: 100%; font: inherit; font-weight: 600; border: 0; border-radius: 10px; padding: 12px 16px;
  background: var(--accent); color: var(--accent-ink); cursor: pointer; min-height: 44px; }
button:hover { filter: brightness(1.08); }
button:focus-visible { outline: 3px solid rgb(52 81 209 / 35%); outline-offset: 2px; }
.fine { font-size: 12.5px; margin: 16px 0 0; text-align: center; }
`

/** The key mark, as in the SPA's header. */
export const MARK_SVG = '<svg class="mark" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8"/><circle cx="12" cy="16" r="5"/><path d="M17 16h9m-3 0v4"/></svg>'

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
