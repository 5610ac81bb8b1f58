import type { SearchAttributePair, SearchAttributeType as SearchAttributeTypeName } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The custom search attributes of mdp's workflows, so the fleet can be found by what it is rather
 * than by id: `temporal workflow list --query 'MdpRole="microbatch"'`, or the same query in the Web
 * UI's filter. The deployment version is the server's own `TemporalWorkerDeploymentVersion`.
 *
 * Registered by `scripts/stack-start.sh` (`--search-attribute`), the test servers, and `mdp up`
 * (`ensureSearchAttributes`) against a cluster that lacks them.
 */

/** What the workflow is: one of {@link MDP_ROLES}. */
export const MdpRole = defineSearchAttributeKey('MdpRole', SearchAttributeType.KEYWORD);
/** The shard a consumer owns. */
export const MdpShard = defineSearchAttributeKey('MdpShard', SearchAttributeType.INT);
/** The provider on the events a producer publishes or a backfill writes. */
export const MdpProvider = defineSearchAttributeKey('MdpProvider', SearchAttributeType.KEYWORD);
/** The dataset a replay reads or a backfill writes. */
export const MdpDataset = defineSearchAttributeKey('MdpDataset', SearchAttributeType.KEYWORD);

/** Every custom search attribute mdp sets, with its type: what one function registers. */
export const MDP_SEARCH_ATTRIBUTES: readonly SearchAttributeKey<SearchAttributeTypeName>[] = [MdpRole, MdpShard, MdpProvider, MdpDataset];

export const MDP_ROLES = ['producer', 'microbatch', 'inference', 'replay', 'backfill', 'recovery', 'model-reload'] as const;
export type MdpRoleName = (typeof MDP_ROLES)[number];

/** The attributes of one workflow; those that do not apply to its role are left out. */
export interface MdpLabels {
  readonly role: MdpRoleName;
  readonly shard?: number;
  readonly provider?: string;
  readonly dataset?: string;
}

/**
 * The `typedSearchAttributes` of a workflow with these labels.
 *
 * @example
 * client.workflow.start('streamConsumerWorkflow', { ..., typedSearchAttributes: mdpSearchAttributes({ role: 'microbatch', shard: 2 }) })
 */
export function mdpSearchAttributes(labels: MdpLabels): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [{ key: MdpRole, value: labels.role }];
  if (labels.shard !== undefined) pairs.push({ key: MdpShard, value: labels.shard });
  if (labels.provider !== undefined) pairs.push({ key: MdpProvider, value: labels.provider });
  if (labels.dataset !== undefined) pairs.push({ key: MdpDataset, value: labels.dataset });
  return pairs;
}
