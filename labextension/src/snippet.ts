/**
 * The Python SDK call that fetches a prompt, e.g.
 * `client.prompts.get("greet", label="production")`.
 *
 * JSON string syntax is valid Python string syntax for every prompt name.
 */
export function sdkSnippet(name: string, label = 'production'): string {
  return `client.prompts.get(${JSON.stringify(name)}, label=${JSON.stringify(label)})`;
}
