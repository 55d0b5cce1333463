// Side effects only: registers tfjs-core gradients (see tfjs-gradients.generated.js).
export {};
