// /escrow — the prepaid OPEN that pays for inference with published models: deposit, request a
// withdrawal, cancel it, and pay it out once it has unlocked.
import { PageHeader } from '../../components/PageHeader';
import { Spinner } from '../../components/ui';
import { useAuth } from '../../lib/auth';
import { SignInNotice } from '../datanets/common';
import { EscrowCard } from './EscrowCard';

export function EscrowPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-escrow">
      <PageHeader title="Escrow">
        Calls to published models are paid from OPEN you deposit into the inference escrow contract.
        The node checks your available balance before each call, charges its exact fee and settles
        the fees on-chain every minute. You sign; the node sends the transactions and pays their
        gas.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to see your escrow">
          Your escrow belongs to your wallet. Connect it and sign in to deposit or withdraw.
        </SignInNotice>
      ) : (
        <EscrowCard key={session.address} />
      )}
    </div>
  );
}
