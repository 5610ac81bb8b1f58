import { Client, Connection } from '@temporalio/client';
import type { StreamingConfig } from '../pipeline/config/index.js';

/** A Temporal client for the configured address and namespace; close its connection when done. */
export async function connectTemporal(config: StreamingConfig): Promise<{ client: Client; close: () => Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new Error(`cannot reach the Temporal server at ${config.temporal.address} (start it with: bash scripts/stack-start.sh): ${(err as Error).message}`);
  }
  return { client: new Client({ connection, namespace: config.temporal.namespace }), close: () => connection.close() };
}

/** Web UI address of a workflow (the dev server's UI listens on 8233 by default). */
export function workflowUrl(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
