// HssEe demo: one client -> two servers -> client private inference on an embedded linear layer.
//
// 1. The model owner has a public linear layer y = W x + b and rewrites it with the client's EE
//    key offline (W' = P_out W Q_in^-1, b' = P_out b).
// 2. The client EE-encrypts its input (a secret rotation of the input features), encodes it in
//    fixed point and splits it into two additive shares over Z_2^64, one per server.
// 3. Each server multiplies its share by W' and adds b' (party A only): no server-to-server
//    traffic is needed for a linear layer.
// 4. The client adds the two output shares, decodes, and undoes the output permutation.
// The result is compared with plain float inference on the original weights.
using System.Diagnostics;
using HssEe;
using HssEe.Compute;
using HssEe.Ee;
using HssEe.Randomness;
using HssEe.Ring;
using HssEe.Runtime;
using HssEe.Sharing;

const int Batch = 8, In = 512, Out = 256;
var format = FixedPointFormat.Default;

if (args.Length > 0)
{
    Console.WriteLine("usage: dotnet run --project samples/HssEe.Demo -c Release");
    Console.WriteLine("Runs an EE-encrypted, secret-shared linear layer (8 x 512 -> 256) between two in-process servers.");
    return args[0] is "-h" or "--help" ? 0 : 2;
}

Console.WriteLine($"HssEe demo: private linear layer [{Batch} x {In}] -> [{Batch} x {Out}], fixed point {format}, backend {ComputeBackend.Cpu.Name}");

// The public model (random weights stand in for a trained layer) and the client's private input.
var weights = new float[Out * In];
var bias = new float[Out];
var input = new float[Batch * In];
using (AesPrg rng = AesPrg.Create())
{
    for (int i = 0; i < weights.Length; i++) weights[i] = (float)(rng.NextGaussian() / Math.Sqrt(In));
    for (int i = 0; i < bias.Length; i++) bias[i] = (float)(0.1 * rng.NextGaussian());
    for (int i = 0; i < input.Length; i++) input[i] = (float)rng.NextGaussian();
}

// Plain reference.
var plain = new float[Batch * Out];
ComputeBackend.Cpu.FloatGemm(input, weights, plain, Batch, In, Out);
for (int r = 0; r < Batch; r++)
    for (int o = 0; o < Out; o++) plain[(r * Out) + o] += bias[o];

var total = Stopwatch.StartNew();

// Client: a fresh EE key (256-bit seed from RandomNumberGenerator).
var phase = Stopwatch.StartNew();
var spec = new EeKeySpec(new EeBoundary("in", EeTransformKind.Orthogonal, In), new EeBoundary("out", EeTransformKind.Permutation, Out));
using EeKey key = EeKey.Create(spec);

// Model owner, offline: rewrite the layer with the key.
var eeWeights = (float[])weights.Clone();
var eeBias = (float[])bias.Clone();
key.EncryptWeight(eeWeights, outputBoundary: "out", inputBoundary: "in");
key.EncryptBias(eeBias, "out");
RingTensor wq = format.Encode(eeWeights, new TensorShape(Out, In));
RingTensor bq = new FixedPointFormat(2 * format.FractionalBits).Encode(Broadcast(eeBias, Batch), new TensorShape(Batch, Out));
TimeSpan offline = phase.Elapsed;

// Client: encrypt, encode, split.
phase.Restart();
var encrypted = new float[input.Length];
key.Encrypt("in", input, encrypted);
(Share shareA, Share shareB) = SecretSharing.Split(encrypted, new TensorShape(Batch, In), format);
TimeSpan clientPrepare = phase.Elapsed;

// Servers: each runs the EE-transformed layer on its own share.
var run = await TwoPartySimulation.RunAsync((channel, ct) =>
{
    Share mine = channel.Party == Party.A ? shareA : shareB;
    using Share product = mine.MatMulPublic(wq, format.FractionalBits);
    return Task.FromResult(product.AddPublic(bq));
});

// Client: reconstruct, decode (the output carries 2f fractional bits), decrypt.
phase.Restart();
float[] eeOutput = SecretSharing.ReconstructToSingle(run.A, run.B);
var output = new float[eeOutput.Length];
key.Decrypt("out", eeOutput, output);
TimeSpan clientFinish = phase.Elapsed;
total.Stop();

// Rigorous bound per output: encoding rounds each x' and w' by at most 2^-(f+1), so
// |error| <= sum_k (|x'_k| + |w'_k|) 2^-(f+1) + K 2^-(2f+2), plus float32 rounding of the
// reference. Computed in EE coordinates, then put in plain order by the output permutation.
double half = format.Resolution / 2;
var eeBound = new float[Batch * Out];
for (int r = 0; r < Batch; r++)
{
    for (int o = 0; o < Out; o++)
    {
        double bound = 1e-4 + (In * half * half);
        for (int k = 0; k < In; k++) bound += (Math.Abs(encrypted[(r * In) + k]) + Math.Abs(eeWeights[(o * In) + k])) * half;
        eeBound[(r * Out) + o] = (float)bound;
    }
}

var errorBound = new float[eeBound.Length];
key.Decrypt("out", eeBound, errorBound);
double maxError = 0, worstSlack = double.MaxValue;
for (int i = 0; i < output.Length; i++)
{
    double err = Math.Abs(output[i] - plain[i]);
    maxError = Math.Max(maxError, err);
    worstSlack = Math.Min(worstSlack, errorBound[i] - err);
}

long shareBytes = (long)Batch * In * sizeof(ulong);
long resultBytes = (long)Batch * Out * sizeof(ulong);
Console.WriteLine();
Console.WriteLine($"  client  encrypt + split     {clientPrepare.TotalMilliseconds,9:F2} ms   sends {CostReport.FormatBytes(shareBytes)} to each server");
Console.WriteLine($"  servers linear layer        {run.Elapsed.TotalMilliseconds,9:F2} ms   server<->server: {run.Cost} (linear layers are local)");
Console.WriteLine($"  client  reconstruct+decrypt {clientFinish.TotalMilliseconds,9:F2} ms   receives {CostReport.FormatBytes(resultBytes)} from each server");
Console.WriteLine($"  total                       {total.Elapsed.TotalMilliseconds,9:F2} ms   (incl. {offline.TotalMilliseconds:F0} ms EE key generation + offline weight rewrite)");
Console.WriteLine();
Console.WriteLine($"  first outputs, plain : {Format(plain)}");
Console.WriteLine($"  first outputs, HSS-EE: {Format(output)}");
Console.WriteLine($"  max |HSS-EE - plain| = {maxError:E2}, within the fixed-point error bound of every element: {worstSlack >= 0}");
Console.WriteLine();
Console.WriteLine("  Each server saw only a uniformly random share of the EE-rotated input; the EE key never left the client.");

shareA.Dispose();
shareB.Dispose();
run.A.Dispose();
run.B.Dispose();
bool ok = worstSlack >= 0;
Console.WriteLine(ok ? "  OK: HSS-EE output matches plain inference." : "  MISMATCH: HSS-EE output differs from plain inference.");
return ok ? 0 : 1;

static float[] Broadcast(float[] row, int rows)
{
    var result = new float[row.Length * rows];
    for (int r = 0; r < rows; r++) row.CopyTo(result, r * row.Length);
    return result;
}

static string Format(float[] values) => string.Join("  ", values.Take(6).Select(v => v.ToString("+0.0000;-0.0000", System.Globalization.CultureInfo.InvariantCulture)));
