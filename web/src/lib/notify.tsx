// One page-level error banner, fed by report(err). An error belongs to the page
// (path) it was reported on, so navigating away hides it.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { toApiError, type ApiError } from './api';
import { useAuth } from './auth';
import { useRouter } from './router';

interface NotifyValue {
  error: ApiError | null;
  report: (err: unknown) => void;
  clear: () => void;
}

const NotifyContext = createContext<NotifyValue>({
  error: null,
  report: () => {},
  clear: () => {},
});

export function NotifyProvider({ children }: { children: ReactNode }) {
  const { expire } = useAuth();
  const { path } = useRouter();
  const [state, setState] = useState<{ error: ApiError; path: string } | null>(null);

  const report = useCallback(
    (err: unknown) => {
      if (err instanceof DOMException && err.name === 'AbortError') return;
      const e = toApiError(err);
      if (e.status === 401) expire();
      const p = window.location.pathname.replace(/\/+$/, '') || '/';
      setState({ error: e, path: p });
    },
    [expire],
  );
  const clear = useCallback(() => setState(null), []);

  const error = state && state.path === path ? state.error : null;
  const value = useMemo(() => ({ error, report, clear }), [error, report, clear]);
  return <NotifyContext.Provider value={value}>{children}</NotifyContext.Provider>;
}

export function useNotify(): NotifyValue {
  return useContext(NotifyContext);
}
