// The two models of the MNIST example: an MLP on flat 784-pixel rows, and a small CNN on
// channels-last images [N, 28, 28, 1].
import * as mx from "@tessera/core";
import * as nn from "@tessera/nn";

export class MLP extends nn.Module {
  constructor(dims = [784, 512, 512, 10]) {
    super();
    this.layers = dims.slice(1).map((d, i) => new nn.Linear(dims[i], d));
  }
  forward(x) {
    x = mx.reshape(x, [x.shape[0], -1]);
    this.layers.slice(0, -1).forEach((l) => (x = nn.relu(l.forward(x))));
    return this.layers[this.layers.length - 1].forward(x);
  }
}

export class CNN extends nn.Module {
  constructor() {
    super();
    this.conv1 = new nn.Conv2d(1, 16, 3, { padding: 1 }); // 28x28x16, pooled to 14x14x16
    this.conv2 = new nn.Conv2d(16, 32, 3, { padding: 1 }); // 14x14x32, pooled to 7x7x32
    this.pool = new nn.MaxPool2d(2);
    this.fc1 = new nn.Linear(7 * 7 * 32, 128);
    this.fc2 = new nn.Linear(128, 10);
  }
  forward(x) {
    x = mx.reshape(x, [x.shape[0], 28, 28, 1]);
    x = this.pool.forward(nn.relu(this.conv1.forward(x)));
    x = this.pool.forward(nn.relu(this.conv2.forward(x)));
    return this.fc2.forward(nn.relu(this.fc1.forward(mx.reshape(x, [x.shape[0], -1]))));
  }
}

export function makeModel(name) {
  if (name === "mlp") return new MLP();
  if (name === "cnn") return new CNN();
  throw new Error(`--model must be mlp or cnn; got ${name}`);
}
