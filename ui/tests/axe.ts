import axe from 'axe-core';

/** Runs axe on the document; fails on serious or critical violations. Colour contrast cannot be
 *  computed in jsdom (no layout): the tokens are chosen for AA and checked in the real window. */
export async function expectAccessible(root: Element = document.body) {
  const result = await axe.run(root, { rules: { 'color-contrast': { enabled: false }, region: { enabled: false } } });
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    throw new Error(bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ')).join('\n  ')}`).join('\n'));
  }
}
