import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";
import * as optim from "@tessera/optim";
import { compile } from "@tessera/transforms";
const cfg = process.argv[2] ?? "transformer";
if (process.argv[3] === "gpu") mx.setDefaultDevice(mx.gpu);
mx.random.seed(0);
let model, opt, x, y, lossFn;
if (cfg === "mlp") {
  const { MLP } = await import(process.cwd() + "/examples/mnist/models.mjs");
  model = new MLP([784, 512, 512, 10]);
  opt = new optim.Adam({ learningRate: 1e-3 });
  x = mx.random.normal([256, 784]); y = mx.random.randint(0, 10, [256], { dtype: "int32" });
  lossFn = (x, y) => nn.losses.crossEntropy(model.forward(x), y, { reduction: "mean" });
} else {
  const lm = await import(process.cwd() + "/examples/lm/model.mjs");
  model = new lm.CharTransformer(96, { contextLen: 128 });
  opt = new optim.AdamW({ learningRate: 1e-3, weightDecay: 0.01 });
  x = mx.random.randint(0, 96, [16, 128], { dtype: "int32" }); y = mx.random.randint(0, 96, [16, 128], { dtype: "int32" });
  lossFn = (x, y) => lm.lossFn(model, x, y);
}
mx.eval(x, y, model.parameters());
const lg = nn.valueAndGrad(model, lossFn);
const run = compile((x, y) => { const [l, g] = lg(x, y); opt.update(model, g); return l; }, { inputs: [model, opt], outputs: [model, opt] });
const buffers = () => [...mx.treeFlatten(model.parameters()), ...mx.treeFlatten(opt.state)].map(([p, a]) => [p, mx.internal.native.describe(a.handle).storage]);
let prev;
for (let i = 0; i < 5; i++) {
  mx.eval(run(x, y), model.parameters(), opt.state);
  const b = buffers();
  if (prev) console.log(i, b.filter(([p, s], k) => prev[k][1] !== s).map(([p]) => p).join(" "));
  prev = b;
}
if (process.argv[3] === "gpu") console.log(JSON.stringify(mx.internal.native.replayStats()));
{
}
