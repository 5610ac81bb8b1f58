/** Where the bench finds the repo it runs from (dist/bench/ is two levels below the root). */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const WORKER_PATH = fileURLToPath(new URL('../workers/worker.js', import.meta.url));
