// /docs: Swagger UI from the server's own files. The document itself needs the key: it is
// asked for first (when the server answers 401), then carried by every request Swagger UI
// makes and pre-filled in its Authorize dialog; a key entered there is kept for the tab too.
import { authedFetch, BASE, keepKey, showError, storedKey } from "./common.js";

const KeepKey = () => ({
  statePlugins: {
    auth: {
      wrapActions: {
        authorize: (original) => (payload) => {
          const entry = payload?.HTTPBearer || payload?.APIKeyHeader;
          if (entry?.value) keepKey(entry.value);
          return original(payload);
        },
        logout: (original) => (payload) => {
          keepKey(null);
          return original(payload);
        },
      },
    },
  },
});

async function main() {
  // Asks for the key if needed; the response itself is read by Swagger UI again.
  const response = await authedFetch("/openapi.json");
  if (!response.ok) throw new Error(`the API document could not be read (HTTP ${response.status})`);
  const spec = await response.json();
  const ui = window.SwaggerUIBundle({
    spec,
    dom_id: "#swagger",
    deepLinking: true,
    persistAuthorization: false,
    plugins: [KeepKey],
    requestInterceptor(request) {
      const key = storedKey();
      if (key && !request.headers.Authorization && !request.headers["X-API-Key"]) {
        request.headers.Authorization = `Bearer ${key}`;
      }
      return request;
    },
    onComplete() {
      const key = storedKey();
      if (key) ui.preauthorizeApiKey("HTTPBearer", key);
    },
  });
}

main().catch(showError);
