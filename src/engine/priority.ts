/** Batch priorities: higher runs first within a lane. Stored as these integers. */
export const Priority = {
  low: 0,
  normal: 1,
  high: 2,
  urgent: 3,
} as const;
export type PriorityName = keyof typeof Priority;
export type PriorityLevel = (typeof Priority)[PriorityName];

export const priorityLevels: readonly number[] = Object.values(Priority);

export function isPriorityLevel(value: number): value is PriorityLevel {
  return priorityLevels.includes(value);
}
