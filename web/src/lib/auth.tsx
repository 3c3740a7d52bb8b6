// Session state: restored from GET /api/auth/session on load, created by SIWE,
// ended by POST /api/auth/logout. The session itself is an HttpOnly cookie.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  type ReactNode,
} from 'react';
import { api, ApiError, toApiError, type Session } from './api';
import { useNode } from './node';
import { loadSignerChoice, signInWithEthereum, type SignerChoice, type SignInStep } from './wallet';

interface AuthValue {
  session: Session | null;
  /** True while the initial session check is in flight. */
  checking: boolean;
  /** The signer used last (kept in localStorage across reloads). */
  signer: SignerChoice | null;
  signIn: (choice: SignerChoice, onStep?: (step: SignInStep) => void) => Promise<Session>;
  signOut: () => Promise<void>;
  /** Called when an authenticated request answered 401: drops the local session. */
  expire: () => void;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const { status } = useNode();
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(true);
  const [signer, setSigner] = useState<SignerChoice | null>(loadSignerChoice);

  useEffect(() => {
    let cancelled = false;
    api
      .session()
      .then((s) => !cancelled && setSession(s))
      .catch(() => !cancelled && setSession(null))
      .finally(() => !cancelled && setChecking(false));
    return () => {
      cancelled = true;
    };
  }, []);

  const signIn = useCallback(
    async (choice: SignerChoice, onStep?: (step: SignInStep) => void) => {
      if (!status) {
        throw new ApiError({
          status: 0,
          code: 'STATUS_UNAVAILABLE',
          message: 'The node status is not loaded yet.',
          hint: 'Wait for the dashboard to load, then try again.',
        });
      }
      try {
        const s = await signInWithEthereum(choice, status, onStep);
        setSession(s);
        setSigner(choice);
        return s;
      } catch (err) {
        throw toApiError(err);
      }
    },
    [status],
  );

  const signOut = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      setSession(null);
    }
  }, []);

  const expire = useCallback(() => setSession(null), []);

  const value = useMemo(
    () => ({ session, checking, signer, signIn, signOut, expire }),
    [session, checking, signer, signIn, signOut, expire],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth must be used inside <AuthProvider>');
  return v;
}
