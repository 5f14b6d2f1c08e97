import { Dialog, showDialog } from '@jupyterlab/apputils';

/** Ask before something that cannot be undone; resolves true when the user confirms. */
export async function confirmAction(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

/** "2026-11-30 10:03" in the user's time zone, the ISO time as a tooltip. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
