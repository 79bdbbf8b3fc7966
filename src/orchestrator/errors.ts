import { IpsecFleetError } from '../errors.js';

export class ChangeNotFoundError extends IpsecFleetError {
  constructor(readonly changeId: string) {
    super('CHANGE_NOT_FOUND', `change ${changeId} does not exist`);
  }
}

/** The idempotency key was used before for a different submission. */
export class IdempotencyConflictError extends IpsecFleetError {
  constructor(readonly existingChangeId: string) {
    super(
      'IDEMPOTENCY_KEY_REUSED',
      `the idempotency key was already used for change ${existingChangeId} with another body`,
    );
  }
}

/** The change is not in a state that allows the operation (e.g. cancelling a running change). */
export class ChangeStateError extends IpsecFleetError {
  constructor(
    readonly changeId: string,
    readonly state: string,
    operation: string,
    /** Why that state does not allow it, when the state alone does not say. */
    why?: string,
  ) {
    super(
      'CHANGE_STATE_CONFLICT',
      `cannot ${operation} change ${changeId}: it is ${state}${why ? `, ${why}` : ''}`,
    );
  }
}

/** A Psk must be sealed at rest, and no key to seal it with is configured. */
export class SecretKeyMissingError extends IpsecFleetError {
  constructor() {
    super(
      'SECRET_KEY_MISSING',
      'IPSEC_FLEET_SECRET_KEY is not set: it is required to accept a change that carries a Psk',
    );
  }
}

export class SecretUnsealError extends IpsecFleetError {
  constructor(options?: ErrorOptions) {
    super(
      'SECRET_UNSEAL_FAILED',
      'a sealed Psk could not be opened: wrong IPSEC_FLEET_SECRET_KEY or tampered data',
      options,
    );
  }
}

/** The lease on the server was lost mid-run (the owner stalled past its lease); stop touching it. */
export class LeaseLostError extends IpsecFleetError {
  constructor(readonly changeId: string) {
    super('LEASE_LOST', `change ${changeId} lost its server lease`);
  }
}

/** A Redis script answered something its caller does not know: a bug or a foreign key layout. */
export class UnexpectedScriptResultError extends IpsecFleetError {
  constructor(script: string, result: unknown) {
    super('UNEXPECTED_SCRIPT_RESULT', `script ${script} answered ${JSON.stringify(result)}`);
  }
}

/** Reads after an apply kept showing another config than the one requested. */
export class VerifyMismatchError extends IpsecFleetError {
  constructor(changeId: string, attempts: number) {
    super(
      'VerifyMismatch',
      `change ${changeId}: the server did not show the applied config after ${attempts} reads`,
    );
  }
}

export class UnknownProfileError extends IpsecFleetError {
  constructor(profile: string) {
    super('PROFILE_UNKNOWN', `credential profile ${profile} is not configured`);
  }
}

/** Separation of duties: the submitter of a change may not approve or reject it. */
export class ApproverIsSubmitterError extends IpsecFleetError {
  constructor(readonly changeId: string) {
    super('APPROVER_IS_SUBMITTER', `change ${changeId}: its submitter cannot approve or reject it`);
  }
}

/** A rollout's change not created: its rollout had left the state it may be submitted in. */
export class RolloutNotRunningError extends IpsecFleetError {
  constructor(
    readonly rolloutId: string,
    readonly state: string,
  ) {
    super('ROLLOUT_NOT_RUNNING', `rollout ${rolloutId} is ${state || 'gone'}: its change was not submitted`);
  }
}
