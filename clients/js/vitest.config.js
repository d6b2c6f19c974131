// The React hook's tests: a real React render in jsdom. The client's own tests run under
// node:test (test/node) and are not Vitest's.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/react/**/*.test.js"],
    environment: "jsdom",
    // The live-gateway tests wait on a worker; every wait below is bounded by waitFor's own.
    testTimeout: 60_000,
  },
});
