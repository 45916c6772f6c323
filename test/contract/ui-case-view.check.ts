import type { CaseView, ErrorInfo, StepView } from '../../lib/core/case-view.js';
import type * as Explorer from '../../ui/src/model.js';

/**
 * The explorer (ui/, compiled on its own for the browser) keeps its own copy of the case's type
 * in ui/src/model.ts; the type is defined once, in lib/core/case-view.ts, for the API and the
 * client. This file holds the copy to it when the tests typecheck (`tsc -p test/tsconfig.json`,
 * run by `npm test`): what the API sends must be what the explorer reads, and the explorer may
 * name no field the API does not send. It has no runtime part: a mismatch fails to compile.
 */

type Holds<T extends true> = T;
type Fits<Sent, Read> = [Sent] extends [Read] ? true : false;
type NamesOnlySent<Read, Sent> = [Exclude<keyof Read, keyof Sent>] extends [never] ? true : false;

export type Checks = [
  Holds<Fits<CaseView, Explorer.CaseView>>,
  Holds<Fits<StepView, Explorer.StepView>>,
  Holds<Fits<ErrorInfo, Explorer.ErrorInfo>>,
  Holds<NamesOnlySent<Explorer.CaseView, CaseView>>,
  Holds<NamesOnlySent<Explorer.StepView, StepView>>,
  Holds<NamesOnlySent<Explorer.ErrorInfo, ErrorInfo>>,
  Holds<NamesOnlySent<NonNullable<Explorer.StepView['compensation']>, NonNullable<StepView['compensation']>>>,
];
