"""Email providers behind one small contract (``providers.base.Provider``)."""
