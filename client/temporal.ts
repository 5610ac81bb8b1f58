import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import type { ConnectionLike } from '@temporalio/client';
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { parseDurationMs } from '../pipeline/contracts/index.js';

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

/** gRPC status of a register call for a namespace that exists (the proto enum is not a direct dependency). */
const GRPC_ALREADY_EXISTS = 6;

export interface EnsuredNamespace {
  readonly namespace: string;
  /** True when registered now, false when it existed already (its retention is left as it is). */
  readonly registered: boolean;
}

/**
 * Registers namespace `name` with `retention` (a duration such as `1d`) unless it exists, then
 * waits until it is usable: `describeNamespace` answers and so does a call inside it (a list of
 * one workflow). A server only sees a namespace registered a moment ago once its namespace cache
 * refreshes, which takes seconds, and a worker started before that fails to poll.
 *
 * @example
 * const connection = await Connection.connect({ address: '127.0.0.1:7233' });
 * await ensureNamespace(connection, 'mdp-bench', '1d');
 */
export async function ensureNamespace(
  connection: ConnectionLike,
  name: string,
  retention: string,
  options: { timeoutMs?: number } = {},
): Promise<EnsuredNamespace> {
  const retentionMs = parseDurationMs(retention);
  if (retentionMs === undefined || retentionMs <= 0) throw new Error(`namespace retention must be a duration such as 1d (got "${retention}")`);
  let registered = true;
  try {
    await connection.workflowService.registerNamespace({ namespace: name, workflowExecutionRetentionPeriod: msNumberToTs(retentionMs) });
  } catch (err) {
    if (!(isGrpcServiceError(err) && Number(err.code) === GRPC_ALREADY_EXISTS))
      throw new Error(`cannot register Temporal namespace ${name}: ${(err as Error).message}`);
    registered = false;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    try {
      await connection.workflowService.describeNamespace({ namespace: name });
      await connection.workflowService.listWorkflowExecutions({ namespace: name, pageSize: 1 });
      return { namespace: name, registered };
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`Temporal namespace ${name} is not usable yet: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Web UI address of a workflow (the dev server's UI listens on 8233 by default). */
export function workflowUrl(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
