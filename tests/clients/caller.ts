// A caller typed by the types openapi-typescript generated from the live /openapi.json
// (test_typescript_client.py type-checks it with tsc, then breaks it on purpose).
import type { components, operations, paths } from "./schema";

type Txt2img = paths["/workflow/sd3.5-medium/txt2img"]["post"];
type Request = Txt2img["requestBody"]["content"]["application/json"];
type Images = Txt2img["responses"][200]["content"]["application/json"];
type Failure = components["schemas"]["ErrorBody"];
type DryRun = operations["validate_sd35_medium_txt2img"]["responses"][200]["content"]["application/json"];

export const request: Request = {
  input: { prompt: "a leafy green spaceship", steps: 20, sampler_name: "euler" },
};

export async function txt2img(base: string, body: Request = request): Promise<string[]> {
  const answer = await fetch(`${base}/workflow/sd3.5-medium/txt2img`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!answer.ok) {
    const failure = (await answer.json()) as Failure;
    throw new Error(`${failure.type}: ${failure.error}`);
  }
  const result = (await answer.json()) as Images;
  return result.images;
}

export async function seedOf(base: string): Promise<number | undefined> {
  const answer = await fetch(`${base}/workflow/sd3.5-medium/txt2img/validate`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  const checked = (await answer.json()) as DryRun;
  return checked.valid ? (checked.input["seed"] as number) : undefined;
}
