import sys
for f in sys.argv[1:]:
    pts=[]
    for line in open(f+'-latency.dat'):
        if line.startswith('#') or not line.strip(): continue
        a=line.split(); pts.append((float(a[0]),float(a[1])))
    out=[]
    for b in range(0,30,5):
        xs=sorted(p[1] for p in pts if b<=p[0]<b+5)
        if xs: out.append("%2d-%2ds %3d/%3d"%(b,b+5,xs[len(xs)//2],xs[min(len(xs)-1,int(len(xs)*0.99))]))
    print("%-9s"%f, '; '.join(out))
