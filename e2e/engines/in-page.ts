// Page-side halves of the adapters' DOM actions, for the drivers that have no equivalent of their own.
// They are serialised into the page: no imports, no outside variables.

/** Sets an input's value as typing would end: `input` and `change` fire. */
export function fillInPage([selector, value]: [string, string]): void {
  const input = document.querySelector(selector)
  if (!(input instanceof HTMLInputElement)) throw new Error(`no input matches ${selector}`)
  input.value = value
  input.dispatchEvent(new Event('input', { bubbles: true }))
  input.dispatchEvent(new Event('change', { bubbles: true }))
}

/** `element.click()`: the click handlers have run when the call returns. */
export function clickInPage(selector: string): void {
  const element = document.querySelector(selector)
  if (!(element instanceof HTMLElement)) throw new Error(`no element matches ${selector}`)
  element.click()
}
