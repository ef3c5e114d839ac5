using System.Diagnostics;
using System.Numerics.Tensors;
using HssEe.Randomness;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace HssEe.Ee;

/// <summary>
/// A secret dense rotation <c>y = Q x</c> with <c>Q</c> orthogonal (<c>Q^T Q = I</c>), stored in float64.
/// Rotations preserve norms and dot products, so they commute with RMSNorm (gain folded into the next
/// linear layer) and leave attention scores unchanged when applied to both q and k.
/// </summary>
/// <remarks>
/// <para><see cref="EeTransformKind.Orthogonal"/>: Haar-distributed on O(d): the Q factor of a matrix of
/// i.i.d. standard normals (Math.NET Householder QR), with the columns multiplied by the signs of R's
/// diagonal so that the distribution is exactly Haar (Mezzadri, "How to generate random matrices from
/// the classical compact groups", 2007).</para>
/// <para><see cref="EeTransformKind.OrthogonalFixingOnes"/>: Haar on the subgroup with <c>Q 1 = 1</c>:
/// <c>Q = H diag(1, Q') H</c> with <c>H</c> the Householder reflection swapping <c>e_1</c> and
/// <c>1/sqrt(d)</c> and <c>Q'</c> Haar on O(d-1). Such rotations also fix the mean of a vector, so they
/// commute with LayerNorm (gain and bias folded).</para>
/// <para>Applying the transform costs <c>d^2</c> multiply-adds per row. The QR factorisation's internal
/// temporaries inside Math.NET cannot all be wiped; the Gaussian matrix, Q and R are.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class OrthogonalTransform : FeatureTransform
{
    [DebuggerBrowsable(DebuggerBrowsableState.Never)]
    private readonly double[] _q; // row-major d x d

    private OrthogonalTransform(string name, EeTransformKind kind, int dimension, double[] q)
        : base(name, kind, dimension)
    {
        _q = q;
    }

    private protected override long FiberCost => (long)Dimension * Dimension;

    /// <summary>A copy of the row-major matrix (secret; tests only).</summary>
    internal double[] CopyMatrix()
    {
        ThrowIfDisposed();
        return (double[])_q.Clone();
    }

    internal static OrthogonalTransform CreateHaar(string name, int d, AesPrg prg) =>
        new(name, EeTransformKind.Orthogonal, d, HaarMatrix(d, prg));

    internal static OrthogonalTransform CreateFixingOnes(string name, int d, AesPrg prg) =>
        new(name, EeTransformKind.OrthogonalFixingOnes, d, FixingOnesMatrix(d, prg));

    /// <summary>A Haar-random orthogonal d x d matrix, row-major, in a pinned array.</summary>
    internal static double[] HaarMatrix(int d, AesPrg prg)
    {
        double[] gaussian = SecretArray<double>(d * d);
        Matrix<double>? q = null;
        Matrix<double>? r = null;
        try
        {
            EeSampling.FillGaussian(prg, gaussian);
            Matrix<double> g = Matrix<double>.Build.Dense(d, d, gaussian); // binds the array (column-major)
            QR<double> qr = g.QR(QRMethod.Full);
            q = qr.Q;
            r = qr.R;
            double[] result = SecretArray<double>(d * d);
            for (int j = 0; j < d; j++)
            {
                double sign = r[j, j] < 0 ? -1.0 : 1.0;
                for (int i = 0; i < d; i++)
                {
                    result[(i * d) + j] = q[i, j] * sign;
                }
            }

            return result;
        }
        finally
        {
            Array.Clear(gaussian);
            q?.Clear();
            r?.Clear();
        }
    }

    /// <summary>A Haar-random orthogonal matrix among those with <c>Q 1 = 1</c>, row-major, pinned.</summary>
    internal static double[] FixingOnesMatrix(int d, AesPrg prg)
    {
        double[] result = SecretArray<double>(d * d);
        if (d == 1)
        {
            result[0] = 1.0;
            return result;
        }

        int m = d - 1;
        double[] inner = HaarMatrix(m, prg);
        double[] x = SecretArray<double>(d * d);
        double[] tmp = SecretArray<double>(d);
        try
        {
            // v = e1 - u with u = 1/sqrt(d); H = I - 2 v v^T / (v^T v) swaps e1 and u.
            double u = 1.0 / Math.Sqrt(d);
            double[] v = new double[d];
            for (int i = 0; i < d; i++)
            {
                v[i] = -u;
            }

            v[0] += 1.0;
            double vv = 0;
            for (int i = 0; i < d; i++)
            {
                vv += v[i] * v[i];
            }

            double beta = 2.0 / vv;

            // M = diag(1, Q'); X = M H = M - beta (M v) v^T.
            x[0] = 1.0;
            for (int i = 0; i < m; i++)
            {
                Array.Copy(inner, i * m, x, ((i + 1) * d) + 1, m);
            }

            for (int i = 0; i < d; i++)
            {
                double s = 0;
                for (int k = 0; k < d; k++)
                {
                    s += x[(i * d) + k] * v[k];
                }

                tmp[i] = beta * s;
            }

            for (int i = 0; i < d; i++)
            {
                for (int j = 0; j < d; j++)
                {
                    x[(i * d) + j] -= tmp[i] * v[j];
                }
            }

            // Q = H X = X - beta v (v^T X).
            Array.Clear(tmp);
            for (int k = 0; k < d; k++)
            {
                for (int j = 0; j < d; j++)
                {
                    tmp[j] += v[k] * x[(k * d) + j];
                }
            }

            for (int i = 0; i < d; i++)
            {
                for (int j = 0; j < d; j++)
                {
                    result[(i * d) + j] = x[(i * d) + j] - (beta * v[i] * tmp[j]);
                }
            }

            return result;
        }
        finally
        {
            Array.Clear(inner);
            Array.Clear(x);
            Array.Clear(tmp);
        }
    }

    private protected override void WipeCore() => Array.Clear(_q);

    private protected override void FiberCore(ReadOnlySpan<double> src, Span<double> dst, TransformOp op)
    {
        int d = Dimension;
        ReadOnlySpan<double> q = _q;
        if (op is TransformOp.Forward or TransformOp.InverseTranspose)
        {
            // Q^-T = Q: y_i = sum_j Q[i, j] x_j.
            for (int i = 0; i < d; i++)
            {
                dst[i] = TensorPrimitives.Dot(q.Slice(i * d, d), src);
            }
        }
        else
        {
            // Q^-1 = Q^T: y = sum_i x_i Q[i, :].
            dst.Clear();
            for (int i = 0; i < d; i++)
            {
                TensorPrimitives.MultiplyAdd(q.Slice(i * d, d), src[i], dst, dst);
            }
        }
    }
}
