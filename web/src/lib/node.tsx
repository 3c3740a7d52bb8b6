// Node status (GET /api/status), loaded once and shared; pages may reload it.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  type ReactNode,
} from 'react';
import { api, toApiError, type ApiError, type NodeStatus } from './api';

interface NodeValue {
  status: NodeStatus | null;
  loading: boolean;
  error: ApiError | null;
  reload: () => Promise<void>;
}

const NodeContext = createContext<NodeValue>({
  status: null,
  loading: true,
  error: null,
  reload: async () => {},
});

export function NodeProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<NodeStatus | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);

  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setStatus(await api.status());
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  const value = useMemo(
    () => ({ status, loading, error, reload }),
    [status, loading, error, reload],
  );
  return <NodeContext.Provider value={value}>{children}</NodeContext.Provider>;
}

export function useNode(): NodeValue {
  return useContext(NodeContext);
}
