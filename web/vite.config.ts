import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// Build from the repository root with: npx vite build --config web/vite.config.ts
// The backend serves web/dist at "/" (SPA fallback to index.html for non-/api paths).
export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npx vite --config web/vite.config.ts` for UI work against a node on :8080.
    proxy: {
      '/api': process.env.OPENLEDGER_URL ?? 'http://127.0.0.1:7070',
      '/healthz': process.env.OPENLEDGER_URL ?? 'http://127.0.0.1:7070',
      '/v1': process.env.OPENLEDGER_URL ?? 'http://127.0.0.1:7070',
    },
  },
});
