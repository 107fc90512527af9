"""Table <-> float matrix, reversibly, one vectorized pass per column (never a Python loop per row).

Numeric columns use a quantile transform to a standard normal ("quantile" mode): any multi-modal or skewed
marginal becomes N(0, 1), which is what a generator fed Gaussian noise learns most easily, and the inverse
(the stored quantile function) can only produce values inside the observed range. Point masses (e.g. the
92% zeros of capital-gain) are spread over their CDF interval (randomized probability integral transform),
and the inverse maps that whole interval back to the exact value. "minmax" mode scales to [0, 1] instead:
the imputer uses it because GAIN's RMSE is defined on min-max scaled data. "mode" mode is mode-specific
normalisation (trainers/mode_encoding.py): a Gaussian mixture per column, a value becomes its mode (a
one-hot span, role "mode") plus a bounded offset inside that mode (kind "bounded": a tanh output) — the
quantile transform keeps every marginal but hides which mode a value is in, so dependences between the
modes of different columns (the 8-Gaussian ring) are hard to learn through it. "auto" chooses per column
(mode_encoding.choose_encoding): "mode" where the values form clusters separated by low density and are not
mostly point masses, "quantile" elsewhere — each column's choice is stored in its params ("encoding"), so
one table can mix both.

Categoricals and booleans are one-hot. Missing values either get an indicator ("indicator" mode: an extra
one-hot category for discrete columns, an [observed, missing] pair for numeric ones) or become NaN holes
in every dimension of the column ("nan" mode, for the imputer, which fills them).

With small_integers=True, integer columns with few levels (education-num's 16) are one-hot too: a GAN that
must hit an exact level through a continuous output rarely matches deterministic partners (education), and
a discriminator notices at once. They still decode to integers of the original dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ganstream.trainers import joint_encoding as joint
from ganstream.trainers.column_values import (argmax_rows, arrow_string_column, levels, nearest, numeric_block,
                                              numeric_values, restore_dtype,
                                              strings_from_codes, values_from_normal_scores)
from ganstream.trainers.errors import DataError
from ganstream.trainers.mode_encoding import choose_encoding, decode_modes, encode_modes, fit_modes, heaviest_mode, mode_count
from ganstream.trainers.schema import ColumnSpec, TableSchema, check_compatible, infer_schema

MAX_QUANTILES = 1000
NUMERIC_ENCODINGS = ("quantile", "minmax", "mode", "auto")


@dataclass(frozen=True)
class Span:
    """A block of encoded dimensions: `continuous` (one unbounded value), `bounded` (one value in (-1, 1):
    a mode's offset) or `softmax` (one-hot group: categories, missing indicator, or a numeric mode)."""

    column: str
    role: str  # "value" | "category" | "missing" | "mode"
    kind: str  # "continuous" | "bounded" | "softmax"
    start: int
    width: int

    @property
    def stop(self) -> int:
        return self.start + self.width


class TableEncoder:
    """fit(df) learns per-column transforms; transform/inverse_transform map between table and matrix."""

    def __init__(self, numeric: str = "quantile", missing: str = "indicator", small_integers: bool = False,
                 seed: int = 0, joint_modes: bool = False):
        if numeric not in NUMERIC_ENCODINGS:
            raise ValueError(f"numeric must be one of {', '.join(NUMERIC_ENCODINGS)}, not {numeric!r}")
        if missing not in ("indicator", "nan"):
            raise ValueError(f"missing must be 'indicator' or 'nan', not {missing!r}")
        self.numeric = numeric
        self.missing = missing
        self.small_integers = small_integers
        self.seed = seed  # numeric="mode" / "auto": the mixture fit's sample and initialisation
        self.joint_modes = joint_modes  # numeric="auto": look for joint modes (trainers/joint_encoding.py)
        self.schema: TableSchema | None = None
        self.numeric_params: dict[str, dict] = {}
        self.joint: dict | None = None  # numeric="auto": the joint modes of a block of columns, if the data has them
        self.joint_evidence: dict | None = None
        self.spans: list[Span] = []

    def as_category(self, spec: ColumnSpec) -> bool:
        return spec.is_discrete or (self.small_integers and spec.is_small_integer)

    def column_encoding(self, name: str) -> str:
        """A numeric column's own encoding: "auto" stored its choice with the column's params."""
        return self.numeric_params[name].get("encoding", self.numeric)

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, schema: TableSchema | None = None) -> "TableEncoder":
        self.schema = schema or infer_schema(df)
        self.numeric_params = {}
        whitened = self._fit_joint(df) if self.numeric == "auto" and self.joint_modes else {}
        for spec in self.schema.columns:
            if spec.name in whitened:  # a joint-block column: its value span holds u, quantile-encoded
                self.numeric_params[spec.name] = {**self._fit_encoding("quantile", None, whitened[spec.name]),
                                                  "encoding": "joint"}
            elif not self.as_category(spec):
                values = numeric_values(df[spec.name], spec)
                values = values[~np.isnan(values)]
                self.numeric_params[spec.name] = self._fit_numeric(spec, values)
        self.spans = self._layout()
        return self

    def _fit_joint(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """numeric="auto": the joint modes of the eligible numeric columns, kept only where they explain the
        rows better than the columns alone (trainers/joint_encoding.py). Returns each block column's whitened
        coordinates of the complete rows (what its quantile encoding is fitted on), or {} without a block."""
        self.joint, self.joint_evidence = None, None
        specs = [s for s in self.schema.columns if not self.as_category(s)
                 and joint.eligible(numeric_values(df[s.name], s))]
        if len(specs) < 2:
            return {}
        values = numeric_block(df, specs)
        self.joint, self.joint_evidence = joint.fit_joint([s.name for s in specs], values,
                                                          [s.is_integral for s in specs], seed=self.seed)
        if self.joint is None:
            return {}
        complete = values[~np.isnan(values).any(axis=1)]
        _, u = joint.encode(self.joint, complete, np.random.default_rng(self.seed))
        return {s.name: u[:, j] for j, s in enumerate(specs)}

    def _fit_numeric(self, spec: ColumnSpec, values: np.ndarray) -> dict:
        if self.numeric == "auto":
            choice, evidence, mixture = choose_encoding(values, integer=spec.is_integral, seed=self.seed)
            params = self._fit_encoding(choice, spec, values, mixture)
            return {**params, "encoding": choice, "auto": evidence}
        return self._fit_encoding(self.numeric, spec, values)

    def _fit_encoding(self, encoding: str, spec: ColumnSpec, values: np.ndarray, mixture: dict | None = None) -> dict:
        if encoding == "minmax":
            return {"min": float(values.min()), "max": float(values.max())}
        if spec is None:  # joint-block coordinates: plain quantiles
            n_q = int(min(MAX_QUANTILES, max(2, values.size)))
            return {"quantiles": [float(q) for q in np.quantile(values, np.linspace(0.0, 1.0, n_q))]}
        if encoding == "mode":
            params = mixture if mixture is not None else fit_modes(values, seed=self.seed)
            if spec.kind == "integer":
                support = np.unique(values)
                if support.size <= MAX_QUANTILES:
                    params["support"] = [float(v) for v in support]
            return params
        n_q = int(min(MAX_QUANTILES, max(2, values.size)))
        params = {"quantiles": [float(q) for q in np.quantile(values, np.linspace(0.0, 1.0, n_q))]}
        if spec.kind == "integer":
            support = np.unique(values)
            if support.size <= MAX_QUANTILES:  # e.g. capital-gain's 119 amounts: decode only to amounts that occur
                params["support"] = [float(v) for v in support]
        return params

    def _layout(self) -> list[Span]:
        spans, pos = [], 0
        for spec in self.schema.columns:
            with_indicator = spec.has_missing and self.missing == "indicator"
            if self.as_category(spec):
                width = len(spec.categories) + (1 if with_indicator else 0)
                spans.append(Span(spec.name, "category", "softmax", pos, width))
                pos += width
            elif self.column_encoding(spec.name) == "mode":
                k = mode_count(self.numeric_params[spec.name])
                spans.append(Span(spec.name, "value", "bounded", pos, 1))
                spans.append(Span(spec.name, "mode", "softmax", pos + 1, k))
                pos += 1 + k
                if with_indicator:
                    spans.append(Span(spec.name, "missing", "softmax", pos, 2))
                    pos += 2
            else:
                spans.append(Span(spec.name, "value", "continuous", pos, 1))
                pos += 1
                if with_indicator:
                    spans.append(Span(spec.name, "missing", "softmax", pos, 2))
                    pos += 2
        if self.joint is not None:
            spans.append(Span(joint.JOINT_COLUMN, "joint", "softmax", pos, joint.mode_count(self.joint)))
        return spans

    @property
    def output_dim(self) -> int:
        return self.spans[-1].stop if self.spans else 0

    def column_spans(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.column == name]

    # ------------------------------------------------------------ transform
    def transform(self, df: pd.DataFrame, missing_mask: pd.DataFrame | None = None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
        """Encode `df`. `missing_mask` (default: df.isna()) decides the indicators, so values imputed
        into `df` can be encoded while the indicators still say which cells were missing originally."""
        self._require_fit()
        check_compatible(self.schema, df)
        rng = rng or np.random.default_rng(0)
        n = len(df)
        out = np.zeros((n, self.output_dim), dtype=np.float32)
        whitened = {}
        if self.joint is not None:
            block = numeric_block(df, [self.schema[c] for c in self.joint["columns"]])
            mode, u = joint.encode(self.joint, block, rng)
            whitened = dict(zip(self.joint["columns"], u.T))
        for span in self.spans:
            if span.role == "joint":
                out[np.arange(n), span.start + mode] = 1.0
                continue
            spec = self.schema[span.column]
            col = df[spec.name]
            miss = (missing_mask[spec.name] if missing_mask is not None else col.isna()).to_numpy(dtype=bool)
            if span.role == "mode":
                continue  # written together with its column's value span
            if span.role == "value" and self.column_encoding(spec.name) == "mode":
                self._encode_modes(spec, col, miss, out, rng)
            elif span.role == "value":
                values = numeric_values(col, spec)
                if spec.name in whitened:  # kept under a hole too: the block's other columns decode through it
                    values = whitened[spec.name]
                enc = self._encode_numeric(spec, values, rng)
                if self.missing == "nan":
                    enc[miss] = np.nan
                else:
                    enc[np.isnan(enc)] = 0.0  # value slot of a missing cell: ignored, the indicator says why
                out[:, span.start] = enc
            elif span.role == "missing":
                out[np.arange(n), span.start + miss.astype(np.int64)] = 1.0
            else:  # category
                codes = self._category_codes(spec, col)
                if self.missing == "indicator":
                    codes = np.where(miss, len(spec.categories), codes)
                    if (codes < 0).any():
                        raise DataError(f"column '{spec.name}': missing values, but the model saw none in training")
                    out[np.arange(n), span.start + codes] = 1.0
                else:
                    hole = miss | (codes < 0)
                    out[np.arange(n)[~hole], span.start + codes[~hole]] = 1.0
                    out[hole, span.start:span.stop] = np.nan
        return out

    def _category_codes(self, spec: ColumnSpec, col: pd.Series) -> np.ndarray:
        """Vectorized value -> index lookup; unknown non-missing values are an error, missing are -1."""
        lookup = pd.Index(pd.Series(spec.categories, dtype=object))
        observed = col.astype(object).where(col.notna(), None)
        codes = lookup.get_indexer(observed.to_numpy())
        unknown = (codes < 0) & col.notna().to_numpy()
        if unknown.any():
            examples = pd.unique(col[unknown].astype(str))[:3]
            raise DataError(f"column '{spec.name}' has value(s) the model never saw: {', '.join(map(repr, examples))}")
        return codes

    def _encode_modes(self, spec: ColumnSpec, col: pd.Series, miss: np.ndarray, out: np.ndarray,
                      rng: np.random.Generator) -> None:
        """Offset into the value span, one-hot into the mode span. A missing cell gets offset 0 and the
        heaviest mode (indicator mode: a valid one-hot the indicator overrides) or NaN everywhere ("nan")."""
        p = self.numeric_params[spec.name]
        spans = {s.role: s for s in self.column_spans(spec.name)}
        value, mode_span = spans["value"], spans["mode"]
        values = numeric_values(col, spec)
        hole = np.isnan(values)
        offset, mode = encode_modes(p, np.where(hole, p["means"][heaviest_mode(p)], values), rng)
        offset[hole], mode[hole] = 0.0, heaviest_mode(p)
        out[:, value.start] = offset
        out[np.arange(len(values)), mode_span.start + mode] = 1.0
        if self.missing == "nan":
            out[miss | hole, value.start:mode_span.stop] = np.nan

    def _encode_numeric(self, spec: ColumnSpec, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.numeric_params[spec.name]
        if self.column_encoding(spec.name) == "minmax":
            scale = (p["max"] - p["min"]) or 1.0
            return (values - p["min"]) / scale
        q = np.asarray(p["quantiles"])
        cdf = levels(q.size)
        x = np.where(np.isnan(values), q[0], values)
        lo = np.searchsorted(q, x, side="left")
        hi = np.searchsorted(q, x, side="right")
        tie = hi > lo  # x equals one or more stored quantiles: draw u inside their CDF interval
        u = np.interp(x, q, cdf)  # linear between neighbouring quantiles (strictly increasing there)
        lo_c, hi_c = np.clip(lo, 0, q.size - 1), np.clip(hi - 1, 0, q.size - 1)
        u_tie = cdf[lo_c] + rng.random(x.size) * (cdf[hi_c] - cdf[lo_c])
        u = np.where(tie, u_tie, u)
        z = ndtri(u)
        return np.where(np.isnan(values), np.nan, z)

    # ---------------------------------------------------- inverse transform
    def inverse_transform(self, data: np.ndarray, missing: str = "keep") -> pd.DataFrame:
        """Decode a matrix (softmax spans may be logits or one-hot: argmax decides) back into a table with
        the training column order and dtypes. missing='keep' turns indicator-selected cells into missing
        values; 'fill' always returns a value."""
        self._require_fit()
        if missing not in ("keep", "fill"):
            raise ValueError("missing must be 'keep' or 'fill'")
        data = np.asarray(data)
        cols, block = {}, self._decode_joint(data)
        for spec in self.schema.columns:
            spans = {s.role: s for s in self.column_spans(spec.name)}
            miss = np.zeros(len(data), dtype=bool)
            if self.as_category(spec):
                s = spans["category"]
                block = data[:, s.start:s.stop]
                k = len(spec.categories)
                if block.shape[1] > k:
                    miss = argmax_rows(block) == k
                codes = argmax_rows(block[:, :k])
                if arrow_string_column(spec):
                    cols[spec.name] = strings_from_codes(codes, miss if missing == "keep" else None, spec.categories)
                    continue
                values = pd.Series(np.asarray(spec.categories, dtype=object)[codes], dtype=object)
            elif self.column_encoding(spec.name) == "mode":
                s, m = spans["value"], spans["mode"]
                x = decode_modes(self.numeric_params[spec.name], data[:, s.start].astype(np.float64),
                                 argmax_rows(data[:, m.start:m.stop]))
                values = pd.Series(self._round(spec, x))
                if "missing" in spans:
                    mm = spans["missing"]
                    miss = argmax_rows(data[:, mm.start:mm.stop]) == 1
            else:
                s = spans["value"]
                values = pd.Series(block[spec.name] if spec.name in block
                                   else self._decode_numeric(spec, data[:, s.start].astype(np.float64)))
                if "missing" in spans:
                    m = spans["missing"]
                    miss = argmax_rows(data[:, m.start:m.stop]) == 1
            if missing == "keep" and miss.any():
                values = values.mask(miss)
            cols[spec.name] = restore_dtype(values, spec)
        return pd.DataFrame(cols)

    def _decode_joint(self, data: np.ndarray) -> dict[str, np.ndarray]:
        """The joint block's columns, decoded together: each value span's u, then the mode's mean and shape."""
        if self.joint is None:
            return {}
        names = self.joint["columns"]
        u = np.stack([values_from_normal_scores(data[:, self.column_spans(c)[0].start].astype(np.float64),
                                                np.asarray(self.numeric_params[c]["quantiles"])) for c in names], axis=1)
        span = self.spans[-1]
        x = joint.decode(self.joint, argmax_rows(data[:, span.start:span.stop]), u)
        return dict(zip(names, x.T))

    def _decode_numeric(self, spec: ColumnSpec, z: np.ndarray) -> np.ndarray:
        p = self.numeric_params[spec.name]
        if self.column_encoding(spec.name) == "minmax":
            x = p["min"] + np.clip(z, 0.0, 1.0) * ((p["max"] - p["min"]) or 1.0)
            if spec.is_small_integer:  # a few-level integer (a category to the GAN): only levels that occurred
                return nearest(np.sort(np.asarray(spec.categories, dtype=np.float64)), x)
        else:
            x = values_from_normal_scores(z, np.asarray(p["quantiles"]))
            if "support" in p:
                return nearest(np.asarray(p["support"]), x)
        if spec.is_integral:
            x = np.round(x)
        return x

    def _round(self, spec: ColumnSpec, x: np.ndarray) -> np.ndarray:
        """Integer columns decode to a value that occurred (when few distinct ones did) or to a whole number."""
        p = self.numeric_params[spec.name]
        if "support" in p:
            return nearest(np.asarray(p["support"]), x)
        return np.round(x) if spec.is_integral else x

    # --------------------------------------------------------- persistence
    def _require_fit(self):
        if self.schema is None:
            raise RuntimeError("encoder is not fitted")

    def to_json(self) -> dict:
        self._require_fit()
        return {"numeric": self.numeric, "missing": self.missing, "small_integers": self.small_integers,
                "seed": self.seed, "joint_modes": self.joint_modes, "schema": self.schema.to_json(),
                "numeric_params": self.numeric_params, "joint": self.joint, "joint_evidence": self.joint_evidence}

    @classmethod
    def from_json(cls, d: dict) -> "TableEncoder":
        enc = cls(numeric=d["numeric"], missing=d["missing"], small_integers=d.get("small_integers", False),
                  seed=d.get("seed", 0), joint_modes=d.get("joint_modes", False))
        enc.schema = TableSchema.from_json(d["schema"])
        enc.numeric_params = d["numeric_params"]
        enc.joint, enc.joint_evidence = d.get("joint"), d.get("joint_evidence")  # models before 0.2.0: none
        enc.spans = enc._layout()
        return enc
