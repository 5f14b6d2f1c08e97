import * as React from 'react';

import { errorMessage } from './api';

/** Anything paged with the API's keyset cursors. */
export interface Paged<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface PagesState<P extends Paged<T>, T> {
  /** the first page as answered (for what comes with it, e.g. counts) */
  first: P | undefined;
  /** the items of every page loaded so far */
  items: T[];
  error: string | undefined;
  loading: boolean;
  hasMore: boolean;
  loadMore: () => void;
}

interface Loaded<P, T> {
  first: P | undefined;
  items: T[];
  cursor: string | null;
}

const NOTHING = { first: undefined, items: [], cursor: null };

/**
 * The first page of `fetchPage` whenever `deps` change, then more on
 * `loadMore()`. A change of `refresh` fetches the first page again but keeps
 * showing the current items meanwhile (e.g. when a run finishes). Only the
 * answers of the current request generation are kept.
 */
export function usePages<P extends Paged<T>, T>(
  fetchPage: ((cursor: string | null) => Promise<P>) | null,
  deps: ReadonlyArray<unknown>,
  refresh: unknown = null
): PagesState<P, T> {
  const [loaded, setLoaded] = React.useState<Loaded<P, T>>(NOTHING);
  const [error, setError] = React.useState<string | undefined>();
  const [loading, setLoading] = React.useState(false);
  const generation = React.useRef(0);
  const fetchRef = React.useRef(fetchPage);
  fetchRef.current = fetchPage;
  const cursorRef = React.useRef<string | null>(null);
  cursorRef.current = loaded.cursor;

  // Other data: forget the old pages at once. (The caller's `deps`, which the rule cannot check from here.)
  // eslint-disable-next-line react-hooks/exhaustive-deps
  React.useEffect(() => setLoaded(NOTHING), deps);

  React.useEffect(() => {
    const mine = ++generation.current;
    setError(undefined);
    if (fetchPage === null) {
      setLoading(false);
      return;
    }
    setLoading(true);
    fetchPage(null).then(
      page => {
        if (generation.current === mine) {
          setLoaded({ first: page, items: page.items, cursor: page.next_cursor ?? null });
          setLoading(false);
        }
      },
      (reason: unknown) => {
        if (generation.current === mine) {
          setError(errorMessage(reason));
          setLoading(false);
        }
      }
    );
    // `fetchPage` is a fresh closure on every render: the caller's `deps` say when it changed.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, refresh]);

  const loadMore = React.useCallback(() => {
    const fetch = fetchRef.current;
    const cursor = cursorRef.current;
    if (fetch === null || cursor === null) {
      return;
    }
    const mine = ++generation.current;
    setLoading(true);
    setError(undefined);
    fetch(cursor).then(
      page => {
        if (generation.current === mine) {
          setLoaded(current => ({
            first: current.first,
            items: current.items.concat(page.items),
            cursor: page.next_cursor ?? null
          }));
          setLoading(false);
        }
      },
      (reason: unknown) => {
        if (generation.current === mine) {
          setError(errorMessage(reason));
          setLoading(false);
        }
      }
    );
  }, []);

  return {
    first: loaded.first,
    items: loaded.items,
    error,
    loading,
    hasMore: loaded.cursor !== null,
    loadMore
  };
}
