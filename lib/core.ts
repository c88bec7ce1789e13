// The one call path every ops module needs from a handle, with no ops imports: modules that
// work without a handle of their own (a tap closed after its handle, netns.add) reach the
// process's root handle through here instead of importing handle.ts, which imports them.

/** @internal What ops modules call on a handle (not part of the published types). */
export interface Caller {
  readonly closed: boolean;
  _call<T = any>(op: string, args?: object, nativeOp?: string): Promise<T>;
}

let rootFactory: (() => Caller) | undefined;

/** @internal handle.ts registers how the root handle is made when it loads. */
export function setRootFactory(f: () => Caller): void {
  rootFactory = f;
}

/** @internal The handle of the caller's own namespace, opened on first use. */
export function rootHandle(): Caller {
  if (!rootFactory) throw new Error('vnetlink: the root handle is not available before handle.ts has loaded');
  return rootFactory();
}
