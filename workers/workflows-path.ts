import { fileURLToPath } from 'node:url';

/** The workflows module that workers bundle (compiled JS next to this file). */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.js', import.meta.url));
