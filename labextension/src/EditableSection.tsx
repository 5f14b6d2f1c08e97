import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

/** What a section's form is doing: nothing, creating, or editing `item`. */
export type Editing<T> = { mode: 'create' } | { mode: 'edit'; item: T } | null;

export interface EditableSectionProps<T> {
  title: string;
  /** The heading's id (the section is labelled by it). */
  titleId: string;
  /** Whether the caller may create and edit here; else `whoMay` says who can. */
  mayEdit: boolean;
  whoMay: string;
  newLabel: string;
  newTestId: string;
  editing: Editing<T>;
  setEditing: (editing: Editing<T>) => void;
  /** The item's name, keying its form (a new form for another item). */
  nameOf: (item: T) => string;
  /** The create (`item` null) or edit form; it calls `done` when closed, `saved` when something was written. */
  form: (item: T | null, done: (saved: boolean) => void) => React.ReactNode;
  /** Called after the form saved: reload the list. */
  onSaved: () => void;
  /** The list (and its errors), below the form. */
  children: React.ReactNode;
}

/**
 * A managing view's section of named things (model connections, schedules): its heading, who may
 * change them when the caller may not, the New button, the create or edit form, then the list.
 */
export function EditableSection<T>(props: EditableSectionProps<T>): JSX.Element {
  const { editing, setEditing } = props;
  return (
    <section className="agiflow-manage-section" aria-labelledby={props.titleId}>
      <h3 id={props.titleId}>{props.title}</h3>
      {!props.mayEdit && <p className="agiflow-muted">{props.whoMay}</p>}
      {props.mayEdit && editing === null && (
        <Button className="jp-mod-accept" data-testid={props.newTestId} onClick={() => setEditing({ mode: 'create' })}>
          {props.newLabel}
        </Button>
      )}
      {editing !== null && (
        <React.Fragment key={editing.mode === 'edit' ? props.nameOf(editing.item) : ':new'}>
          {props.form(editing.mode === 'edit' ? editing.item : null, saved => {
            setEditing(null);
            if (saved) {
              props.onSaved();
            }
          })}
        </React.Fragment>
      )}
      {props.children}
    </section>
  );
}

export interface EditDeleteButtonsProps {
  /** The row's name, in the buttons' accessible labels. */
  name: string;
  disabled: boolean;
  onEdit: () => void;
  onDelete: () => void;
  /** Test ids: `<prefix>-edit` and `<prefix>-delete`. */
  testIdPrefix: string;
}

/** A row's Edit and Delete buttons in an editable section's list. */
export function EditDeleteButtons(props: EditDeleteButtonsProps): JSX.Element {
  return (
    <>
      <Button
        small
        minimal
        data-testid={`${props.testIdPrefix}-edit`}
        aria-label={`Edit ${props.name}`}
        disabled={props.disabled}
        onClick={props.onEdit}
      >
        Edit
      </Button>
      <Button
        small
        minimal
        className="agiflow-manage-danger"
        data-testid={`${props.testIdPrefix}-delete`}
        aria-label={`Delete ${props.name}`}
        disabled={props.disabled}
        onClick={props.onDelete}
      >
        Delete
      </Button>
    </>
  );
}
