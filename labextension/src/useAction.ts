import * as React from 'react';

import { errorMessage } from './api';

/**
 * A button's action with its busy flag and error, shared by the detail panes: one action at a time,
 * its failure shown until the next action or until `resetKey` (the thing shown) changes.
 */
export function useAction(resetKey: string): {
  busy: string | null;
  error: string | undefined;
  act: (name: string, action: () => Promise<void>) => Promise<void>;
} {
  const [busy, setBusy] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | undefined>();
  React.useEffect(() => setError(undefined), [resetKey]);

  const act = async (name: string, action: () => Promise<void>): Promise<void> => {
    setBusy(name);
    setError(undefined);
    try {
      await action();
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      setBusy(null);
    }
  };
  return { busy, error, act };
}
