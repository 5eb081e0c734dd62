/**
 * The file picker every "Import…" label wraps: a visually hidden `<input type=file>` that hands the chosen file
 * on and clears itself, so picking the same file again fires again.
 */
export function HiddenFileInput({ accept, testId, onFile, disabled }: { accept: string; testId: string; onFile: (file: File) => void; disabled?: boolean }) {
  return (
    <input
      type="file"
      accept={accept}
      className="visually-hidden"
      data-testid={testId}
      disabled={disabled}
      onChange={(event) => {
        const file = event.currentTarget.files?.[0];
        if (file) onFile(file);
        event.currentTarget.value = '';
      }}
    />
  );
}
