import { IpsecFleetError } from '../errors.js';

export class RolloutNotFoundError extends IpsecFleetError {
  constructor(readonly rolloutId: string) {
    super('ROLLOUT_NOT_FOUND', `rollout ${rolloutId} does not exist`);
  }
}

/** The rollout is not in a state that allows the operation (e.g. approving a running rollout). */
export class RolloutStateError extends IpsecFleetError {
  constructor(
    readonly rolloutId: string,
    readonly state: string,
    operation: string,
  ) {
    super('ROLLOUT_STATE_CONFLICT', `cannot ${operation} rollout ${rolloutId}: it is ${state}`);
  }
}

/** An approval or rejection that does not count: by the submitter, or a second one by the same person. */
export class ApprovalRefusedError extends IpsecFleetError {
  constructor(
    readonly rolloutId: string,
    readonly reason: 'self' | 'duplicate',
  ) {
    super(
      reason === 'self' ? 'APPROVER_IS_SUBMITTER' : 'APPROVAL_DUPLICATE',
      reason === 'self'
        ? `rollout ${rolloutId}: its submitter cannot approve or reject it`
        : `rollout ${rolloutId}: this approver has approved it already`,
    );
  }
}

/** The approval window closed before enough approvals arrived. */
export class RolloutExpiredError extends IpsecFleetError {
  constructor(readonly rolloutId: string) {
    super('ROLLOUT_EXPIRED', `rollout ${rolloutId} expired before it was approved`);
  }
}

/** Another call is creating this rollout's rollback right now; asking again shortly returns it. */
export class RollbackInProgressError extends IpsecFleetError {
  constructor(
    readonly rolloutId: string,
    readonly rollbackId: string,
  ) {
    super(
      'ROLLBACK_IN_PROGRESS',
      `rollout ${rolloutId} is being rolled back by ${rollbackId}; ask again shortly`,
    );
  }
}

/** Nothing to roll back: no change of the rollout was applied, or none can be restored. */
export class NothingToRollBackError extends IpsecFleetError {
  constructor(readonly rolloutId: string) {
    super('ROLLBACK_EMPTY', `rollout ${rolloutId} has no applied change that can be restored`);
  }
}

/**
 * Some of the rollout's changes have not ended (a cancelled rollout lets the ones already talking
 * to the cloud finish): a rollback made now would leave out whatever they go on to apply.
 */
export class RollbackTooEarlyError extends IpsecFleetError {
  constructor(
    readonly rolloutId: string,
    readonly unfinished: number,
  ) {
    super(
      'ROLLBACK_TOO_EARLY',
      `rollout ${rolloutId} has ${unfinished} change${unfinished === 1 ? '' : 's'} not ended yet; ask for its rollback once they have`,
    );
  }
}
