import * as React from 'react';

export interface ErrorNoticeProps {
  message: string;
  onRetry?: () => void;
}

/** An API error, shown where the data would have been (never a blank view). */
export function ErrorNotice({ message, onRetry }: ErrorNoticeProps): JSX.Element {
  return (
    <div className="agiflow-error" data-testid="agiflow-error" role="alert">
      <span className="agiflow-error-message">{message}</span>
      {onRetry && (
        <button type="button" className="agiflow-link-button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
