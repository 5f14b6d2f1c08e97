/** The live socket's state, shown in a view's title row (ManageFrame's `toolbar`). */
import * as React from 'react';

import type { SocketStatus } from './events';

const STATUS_TEXT: Record<SocketStatus, string> = {
  live: '● live',
  connecting: 'connecting…',
  reconnecting: '⚠ connection lost: reconnecting…',
  closed: 'not connected'
};

/** The socket's state in words; a lost connection is a warning (it reconnects and catches up by itself). */
export function LiveStatus({ status, what }: { status: SocketStatus; what: string }): JSX.Element {
  return (
    <span
      className={`agiflow-live agiflow-live-${status}`}
      data-testid="agiflow-live"
      role={status === 'reconnecting' ? 'alert' : undefined}
      title={
        status === 'reconnecting'
          ? `${what}: the connection dropped; reconnecting, then catching up on what was missed`
          : `${what}: ${status}`
      }
    >
      {STATUS_TEXT[status]}
    </span>
  );
}

/** A "Live" switch with the state of its socket, for views that follow the server on request. */
export function LiveToggle(props: {
  status: SocketStatus;
  on: boolean;
  onChange: (on: boolean) => void;
  what: string;
}): JSX.Element {
  return (
    <>
      {props.on && <LiveStatus status={props.status} what={props.what} />}
      <label className="agiflow-toggle" title={props.what}>
        <input
          type="checkbox"
          data-testid="agiflow-follow-live"
          checked={props.on}
          onChange={event => props.onChange(event.target.checked)}
        />
        <span>Live</span>
      </label>
    </>
  );
}
