/**
 * @module
 * The shape of one validation problem. Apart from `issues.ts` (which renders and throws them) so that
 * the checks `issues.ts` runs (`input-tree.ts`) can produce issues without importing it back.
 */

export type PathSegment = string | number;

export interface FieldIssue {
  /** Dotted path of the offending field (`router.policy`, `tags.team`); empty for the whole document. */
  path: PathSegment[];
  message: string;
}
