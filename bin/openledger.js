#!/usr/bin/env node
// The `openledger` command. In a source checkout (src/ beside this folder, tsx installed) it runs
// the TypeScript sources, so it can never be staler than the code; an installed package runs
// the compiled dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
let tsx;
if (existsSync(sources)) tsx = await import('tsx/esm/api').catch(() => undefined);
if (tsx) {
  tsx.register();
  await import(sources.href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
