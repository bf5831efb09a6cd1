/** A child of `el`: text (always a text node, never markup), a node, or nothing. */
export type Child = Node | string | null | undefined | false

/**
 * An HTML element with attributes and children. Strings become text nodes: command lines
 * and function names are the watched program's, and never reach the page as markup.
 */
export function el(tag: string, attrs: Record<string, string> = {}, children: Child[] = []): HTMLElement {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value)
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child)
  }
  return node
}

/** An SVG element with attributes. */
export function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value))
  return node
}
