import { useCallback, useEffect, useState } from 'react';

import { errorMessage } from './api';

export interface RequestState<T> {
  data: T | undefined;
  /** A message fit for the user, or undefined when the last request succeeded. */
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Run `request` whenever `deps` change (and on `reload()`), keeping only the
 * answer of the newest call so a slow, stale response never overwrites a
 * fresh one. A null `request` means "nothing to ask yet".
 */
export function useRequest<T>(request: (() => Promise<T>) | null, deps: ReadonlyArray<unknown>): RequestState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    if (request === null) {
      setData(undefined);
      setError(undefined);
      setLoading(false);
      return;
    }
    let current = true;
    setLoading(true);
    setError(undefined);
    request().then(
      value => {
        if (current) {
          setData(value);
          setLoading(false);
        }
      },
      (reason: unknown) => {
        if (current) {
          setData(undefined);
          setError(errorMessage(reason));
          setLoading(false);
        }
      }
    );
    return () => {
      current = false;
    };
    // `request` is a fresh closure on every render: the caller's `deps` say when it changed, which the
    // rule cannot check from here.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, generation]);

  const reload = useCallback(() => setGeneration(g => g + 1), []);
  return { data, error, loading, reload };
}
