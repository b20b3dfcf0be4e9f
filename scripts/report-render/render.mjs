// Renders Markdown files as GitHub shows them, for the tests: GitHub-flavoured Markdown (marked,
// gfm) to HTML, each ```mermaid block drawn by Mermaid in headless Chromium (Debian's package)
// with Mermaid's default configuration, as GitHub draws them. Fails (exit 1) on any Mermaid error:
// a syntax error, too many edges, or a diagram over the maximum text size (which Mermaid draws as
// an error picture instead of throwing). Writes a screenshot of each page's top into OUT_DIR.
//
// usage: node render.mjs OUT_DIR FILE.md...
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { marked } from 'marked';
import { chromium } from 'playwright-core';

const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error('usage: node render.mjs OUT_DIR FILE.md...');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const here = dirname(fileURLToPath(import.meta.url));
const mermaidJs = pathToFileURL(join(here, 'node_modules/mermaid/dist/mermaid.min.js')).href;
const unescape = (html) =>
  html.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // The flags that keep Chromium off the network this machine does not have.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  for (const [index, file] of files.entries()) {
    const markdown = readFileSync(file, 'utf8');
    const body = marked.parse(markdown, { gfm: true }).replace(
      /<pre><code class="language-mermaid">([\s\S]*?)<\/code><\/pre>/g,
      (_, diagram) => `<pre class="mermaid-source">${escape(unescape(diagram))}</pre>`,
    );
    const name = `${index + 1}-${basename(file, '.md')}`;
    const html = join(outDir, `${name}.html`);
    writeFileSync(html, `<!doctype html><meta charset="utf-8"><title>${escape(file)}</title>
<script src="${mermaidJs}"></script><body style="font-family: sans-serif; max-width: 1000px">${body}</body>`);
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(pathToFileURL(resolve(html)).href);
    const result = await page.evaluate(async () => {
      const errors = [];
      const blocks = [...document.querySelectorAll("pre.mermaid-source")];
      mermaid.initialize({ startOnLoad: false });
      for (const [index, block] of blocks.entries()) {
        const text = block.textContent;
        try {
          await mermaid.parse(text);
          const { svg } = await mermaid.render(`diagram${index}`, text);
          if (svg.includes('Maximum text size in diagram exceeded') || svg.includes('Syntax error in text')) {
            errors.push(`diagram ${index + 1}: Mermaid drew an error (${text.length} characters)`);
          }
          block.outerHTML = svg;
        } catch (error) {
          errors.push(`diagram ${index + 1}: ${error && error.message ? error.message : error}`);
        }
      }
      return { errors, diagrams: blocks.length, svgs: document.querySelectorAll('svg').length };
    });
    const shot = join(outDir, `${name}.png`);
    await page.screenshot({ path: shot });
    const errors = [...result.errors, ...pageErrors];
    console.log(`${file}: ${markdown.length} bytes, ${result.diagrams} diagram(s) drawn as ${result.svgs} SVG(s), screenshot ${shot}`);
    for (const error of errors) {
      console.error(`${file}: ${error}`);
      failed = true;
    }
    await page.close();
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
