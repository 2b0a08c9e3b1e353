import { isIgnoredTensor, missingHfTensors, tensorNameMapper, type MappedName } from "../arch/tensor-names.js";
import type { Architecture } from "../arch/types.js";
import { UserError } from "../errors.js";
import type { Checkpoint, CheckpointTensor } from "../readers/checkpoint.js";

export interface MappedTensor {
  readonly tensor: CheckpointTensor;
  readonly name: MappedName;
}

function listed(names: readonly string[]): string {
  return names.slice(0, 5).join(", ") + (names.length > 5 ? `, ... (${names.length} in all)` : "");
}

/**
 * Every checkpoint tensor with its role, as every format's planner starts: a tensor the
 * architecture does not define is refused with the names. `skip` leaves out tensors a
 * planner reads with another one (a packed weight's scale).
 */
export function mapCheckpointTensors(checkpoint: Checkpoint, architecture: Architecture, skip?: (name: string) => boolean): MappedTensor[] {
  const mapName = tensorNameMapper(architecture);
  const mapped: MappedTensor[] = [];
  const unmapped: string[] = [];
  for (const tensor of checkpoint.tensors.values()) {
    if (isIgnoredTensor(tensor.name) || skip?.(tensor.name) || architecture.ignoredHfTensors?.some((pattern) => pattern.test(tensor.name))) continue;
    const name = mapName(tensor.name);
    if (name) mapped.push({ tensor, name });
    else unmapped.push(tensor.name);
  }
  if (unmapped.length > 0) throw new UserError(`tensors the ${architecture.gguf} architecture does not define: ${listed(unmapped)}`, { file: checkpoint.directory });
  return mapped;
}

/**
 * Refuses a checkpoint without a tensor the architecture requires in every block. Planners
 * call it after reading the tensors' headers, so a tensor of the wrong dtype is named first.
 * The output projection may be absent: the runtimes then reuse the token embedding (tied).
 */
export function checkRequiredTensors(checkpoint: Checkpoint, architecture: Architecture, layers: number, neededBy?: string): void {
  const missing = missingHfTensors(architecture, layers, (name) => checkpoint.tensors.has(name));
  if (missing.length > 0) throw new UserError(`checkpoint is missing tensors${neededBy ? ` ${neededBy} needs` : ""}: ${listed(missing)}`, { file: checkpoint.directory });
}
