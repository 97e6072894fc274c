import { resolve } from 'node:path';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

// One package, two entries: `app` (the tablet, inside Tauri) and `portal` (the parents'
// portal, served by sprig-server from the binary; SPRIG_ENTRY=portal). Each entry is a folder
// with its index.html and builds into dist/<entry>.
const entry = process.env.SPRIG_ENTRY ?? 'app';

export default defineConfig({
  root: resolve(import.meta.dirname, entry),
  base: './',
  plugins: [svelte(), ...(process.env.VITEST ? [svelteTesting()] : [])],
  resolve: {
    alias: {
      $lib: resolve(import.meta.dirname, 'src/lib'),
      $app: resolve(import.meta.dirname, 'src/app'),
      $portal: resolve(import.meta.dirname, 'src/portal'),
    },
  },
  // Tauri's dev server port; nothing is ever loaded from elsewhere.
  server: { port: 1420, strictPort: true },
  build: {
    outDir: resolve(import.meta.dirname, 'dist', entry),
    emptyOutDir: true,
    target: 'safari16',
    // No inline scripts or styles: the CSP allows 'self' only.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 800,
  },
  test: {
    root: import.meta.dirname,
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    // A guard against a hung test, not a speed check: a screen test with axe takes under a
    // second on a quiet machine and several on a busy 2-core one (the default 5 s failed there).
    testTimeout: 60_000,
  },
});
