import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { isGrpcServiceError, WorkflowNotFoundError } from '@temporalio/client';

/** gRPC NOT_FOUND, which a client over the worker's native connection may report unmapped. */
const GRPC_NOT_FOUND = 5;

/**
 * Which of `workflowIds` are running. Each is described by its id: a handful of calls, read from
 * the workflows' own state (a visibility query could miss one started a moment ago).
 */
export async function runningWorkflows(client: Client, workflowIds: readonly string[]): Promise<string[]> {
  const running = await Promise.all(
    workflowIds.map(async (workflowId) => {
      try {
        return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && Number(err.code) === GRPC_NOT_FOUND)) return false;
        throw err;
      }
    }),
  );
  return workflowIds.filter((_, i) => running[i]);
}

/** The worker's client, in its namespace, when running as an activity (undefined when called directly, e.g. from a unit test). */
export function activityClient(): Client | undefined {
  try {
    return Context.current().client;
  } catch {
    return undefined;
  }
}
